"""Flow files: models (a superset of Pipecat's FlowConfig), the compiler, graph checks, diagrams."""
