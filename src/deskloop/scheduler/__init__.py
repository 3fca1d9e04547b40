"""What fires a routine: the scheduler process, the session child, the service install.

What a routine is (schedules, records, runs, outcomes) lives in `deskloop.routines`;
`deskloop scheduler` runs `deskloop.scheduler.runner.Scheduler` and the CLI lives in
`deskloop.scheduler.commands`.
"""
