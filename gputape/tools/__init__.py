"""Tools on top of the library: check_numerics (debugging), numerical gradient checks
(testing), DLPack import (interop)."""
