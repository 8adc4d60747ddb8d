print("partial answer")
exit(3)
