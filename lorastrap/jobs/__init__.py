"""The job queue: persisted rows, job kinds (handlers), the worker that runs them."""
