import os
import sys

# Tests run in-process on one CPU device unless a test spawns its own subprocess.
os.environ.setdefault("JAX_PLATFORMS", "cpu")
# ... and the CLI, called in-process, keeps that one device (its default is one per core).
os.environ.setdefault("JAX_NUM_CPU_DEVICES", "1")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)
