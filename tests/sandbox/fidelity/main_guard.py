def solve(values):
    return sorted(values, reverse=True)


def main():
    input()
    print(*solve(map(int, input().split())))


if __name__ == "__main__":
    main()
