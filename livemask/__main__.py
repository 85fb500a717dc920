from livemask.apps.cli import entry

entry()
