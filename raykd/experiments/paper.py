"""The paper's quoted figures for the reproduction tables (one copy: `raykd.paper_figures`)."""

from raykd.paper_figures import SOURCE, TABLE1, TABLE3A, TABLE4, dataset_key, quoted  # noqa: F401
