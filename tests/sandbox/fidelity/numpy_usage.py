import sys

import numpy as np

data = np.array(sys.stdin.read().split(), dtype=np.int64)
print(int(data.sum()), int(data.max()), float(np.mean(data)))
