from livemask.cli import entry

entry()
