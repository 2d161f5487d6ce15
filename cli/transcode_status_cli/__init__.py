"""transcode-status command-line tool: jobs and events of a deployed stack or of the local run."""
