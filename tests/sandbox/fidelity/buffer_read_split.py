import sys

data = sys.stdin.buffer.read().split()
n = int(data[0])
numbers = list(map(int, data[1 : n + 1]))
sys.stdout.write(" ".join(str(x * 2) for x in numbers) + "\n")
sys.stdout.buffer.write(b"%d\n" % sum(numbers))
