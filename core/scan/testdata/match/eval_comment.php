<?php
/* The dropper with comments where PHP allows them, to slip past plain patterns. */
@eval/**/(/*x*/base64_decode/**/('ZWNobyAneCc7'));
