from botunet.cli.main import entrypoint

entrypoint()
