import sys

from greenfoundry.cli import main

sys.exit(main())
