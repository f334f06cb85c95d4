"""The two ways a block (one attention, FFN or layer of a stack) is named, both (kind, layer number).

A model that has lost layers numbers its blocks two ways, and mixing them up pairs the wrong
blocks without an error, so each has its own name (a leaf module: every other one may import it):

- `BlockPosition`: (kind, position of its layer in the model NOW). What importance statistics,
  plans, selections and surgery address; dropping a layer renumbers the ones after it.
- `BlockId`: (kind, ORIGINAL layer id). Stable across dropped layers: a pruned student's captures
  line up with its teacher's by it, and ratios count against the starting model's sizes by it
  (`raykd.structures.layers.layer_ids` maps one to the other).
"""

BlockPosition = tuple[str, int]
BlockId = tuple[str, int]
