import GitMLCommands

GitML.main()
