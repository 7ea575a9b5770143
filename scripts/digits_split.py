"""Write kdlab/digits_split.json: the digits' train/test split of seed 0, as scikit-learn's stratified
train_test_split draws it, so that kdlab loads the digits without importing scikit-learn.

    python scripts/digits_split.py      # only if scikit-learn's split or its digits ever change;
                                        # tests/test_data.py checks the stored split against scikit-learn's
"""

import json

from kdlab.data import DIGITS_TEST_SIZE, STORED_DIGITS_SPLIT, digits_table, stratified_digits_split

_, labels = digits_table()
train, test = stratified_digits_split(0, labels)
STORED_DIGITS_SPLIT.write_text(json.dumps({
    "about": f"indices into scikit-learn's digits (digits.csv.gz): train_test_split(test_size={DIGITS_TEST_SIZE}, "
             "random_state=0, stratify=labels), in the order it returns them; written by scripts/digits_split.py",
    "train": [int(i) for i in train], "test": [int(i) for i in test]}) + "\n")
print(f"wrote {STORED_DIGITS_SPLIT}: {len(train)} train and {len(test)} test indices")
