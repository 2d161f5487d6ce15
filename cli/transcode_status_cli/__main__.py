from transcode_status_cli.main import main

main()
