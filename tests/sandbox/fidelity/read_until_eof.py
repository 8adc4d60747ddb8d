total = 0
count = 0
while True:
    try:
        line = input()
    except EOFError:
        break
    total += sum(map(int, line.split()))
    count += 1
print(count, total)
