PROCESSES = ("web",)  # the processes `python -m services.console` starts
