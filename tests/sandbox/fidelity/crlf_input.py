first = input()
second = input()
print(len(first), len(second), repr(first[-1]), int(second) + 1)
