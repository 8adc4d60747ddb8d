import sys

print("first")
sys.stdout.flush()
print("second")
quit(0)
