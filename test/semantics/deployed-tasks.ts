/** The deployed semantic suite's task module: both of the suite's task files, in one bundle. */
import "./tasks.ts";
import "./tasks-flyte.ts";
