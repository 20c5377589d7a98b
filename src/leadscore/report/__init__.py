"""Reports for people: Markdown and PNG renderings of stage results."""
