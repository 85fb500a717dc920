import sys

from livemask.cli import main

sys.exit(main())
