from s2l.cli import main

raise SystemExit(main())
