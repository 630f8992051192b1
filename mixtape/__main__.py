from mixtape.cli import main

raise SystemExit(main())
