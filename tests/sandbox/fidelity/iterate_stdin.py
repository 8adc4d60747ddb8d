import sys

lines = [line for line in sys.stdin]
print(len(lines), sum(len(line) for line in lines))
print(open(0).read() == "")
