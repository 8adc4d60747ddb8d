MOD = 10**9 + 7
a, b = map(int, input().split())
print(pow(a, b, MOD), pow(a, -1, MOD) * a % MOD, pow(2, 10))
