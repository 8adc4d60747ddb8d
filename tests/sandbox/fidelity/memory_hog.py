table = [0] * (int(input()) * 1024 * 1024 // 8)
print(len(table))
