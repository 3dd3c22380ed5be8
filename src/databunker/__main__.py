from databunker.cli import main

raise SystemExit(main())
