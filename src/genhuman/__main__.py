import sys

from genhuman.cli import main

sys.exit(main())
