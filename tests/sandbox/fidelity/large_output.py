n = int(input())
line = "x" * 99 + "\n"
print(line * (n // 100), end="")
