"""Detection: score the sessions of captures or live pcap streams as early as possible."""
