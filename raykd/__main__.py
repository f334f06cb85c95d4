import sys

from raykd.cli import main

sys.exit(main())
