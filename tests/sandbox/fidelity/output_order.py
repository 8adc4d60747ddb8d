import os

print("buffered first")
os.write(1, b"written straight to fd 1\n")
print("buffered second")
