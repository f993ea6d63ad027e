import sys

from local.faults.drill import main

sys.exit(main())
