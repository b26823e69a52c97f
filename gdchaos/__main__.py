from gdchaos.cli import main

raise SystemExit(main())
