"""What each env needs: one resolution per Environment, then the files of the plan.

``resolver`` runs resolvelib per env (binary first, constraints, ``--hash`` pins,
``[dependencies]`` overrides) over the records of ``records`` (what a resolution is
asked, what it gives back), ``candidates`` says which files an env can use and
which wheel its pip would pick, ``plan`` turns the pins into the files each env
needs, ``report`` explains conflicts and fallbacks, and ``builddeps`` / ``buildenv``
/ ``hooks`` find what each planned sdist needs to build on the env's platform.
"""
