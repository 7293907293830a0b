import sys

from crm_graph.dashboard import main

sys.exit(main(sys.argv))
