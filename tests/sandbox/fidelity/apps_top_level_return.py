n = int(input())
if n % 2 == 0:
    print("even")
    return
print("odd")
