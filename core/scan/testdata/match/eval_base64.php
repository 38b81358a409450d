<?php
// mamori test sample: a one-line dropper (the payload below is harmless: echo 'x';)
@eval(base64_decode('ZWNobyAneCc7'));
