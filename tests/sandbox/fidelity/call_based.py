class Solution:
    def modPow(self, base: int, exponent: int, mod: int) -> List[int]:
        return [pow(base, exponent, mod), gcd(base, mod)]
