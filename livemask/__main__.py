import logging
import os
import sys

from livemask.cli import main

code = main()
# Every output is closed by now. TensorFlow's interpreter teardown takes one to two seconds
# on 2 cores, so skip it: the live window's q/Esc then ends the process at once.
logging.shutdown()
sys.stdout.flush()
sys.stderr.flush()
os._exit(code)
