from ccm.cli import main

raise SystemExit(main())
