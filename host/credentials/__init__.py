"""The app's own AWS identity: the host's credentials endpoint and the files that install it."""
