import sys

from support.box.run import main

sys.exit(main())
