"""The workbench's screens: the layout lives here, the behaviour in the app."""
