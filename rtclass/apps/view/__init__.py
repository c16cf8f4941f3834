"""The live probe view in a browser: state from the published topics, an HTTP server, the page."""
