"""The CRI server: one module per RPC, bound to gRPC in ``servicer``."""
