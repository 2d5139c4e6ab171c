import { addDifference } from "./add-difference.js";
import { consensus } from "./consensus.js";
import { dare } from "./dare.js";
import type { AnyMergeMethod } from "./merge-method.js";
import { slerp } from "./slerp.js";
import { ties } from "./ties.js";
import { trainDifference } from "./train-difference.js";
import { weightedSum } from "./weighted-sum.js";

/** The methods shipped with stmerge; they use the same plugin shape as third-party methods. */
export const BUILTIN_MERGE_METHODS: readonly AnyMergeMethod[] = [weightedSum, addDifference, trainDifference, ties, dare, slerp, consensus];
