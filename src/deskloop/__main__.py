import sys

from deskloop.cli import main

sys.exit(main())
