/** The deployed semantic suite's task module: the suite's task files, in one bundle. */
import "./tasks.ts";
import "./tasks-flyte.ts";
import "./tasks-waits.ts";
import "./tasks-recover.ts";
