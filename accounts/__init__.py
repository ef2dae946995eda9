"""Sign-in and sessions: lock-out after failed logins, audit of sign-ins, idle timeout."""
